"""The GraphQL API: schema, types, loaders and the HTTP view."""
