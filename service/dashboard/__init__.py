"""The usage dashboard at /dashboard and GraphiQL's assets, served without a CDN.

`static/` is built from `frontend/` (`npm ci && npm run build`) and committed,
so the service needs no Node at run time.
"""
