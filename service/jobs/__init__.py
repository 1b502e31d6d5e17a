"""Jobs: Corti calls asked for by a mutation and run by the background worker.

`service.py` stores a job (and its uploaded audio) in the mutation's
transaction, `queue.py` leases jobs to workers, `tasks.py` holds what each kind
of job does, and `audio.py` keeps uploaded audio in the database in ~1 MiB rows
until the job ends. The worker plumbing lives in `service/worker/`.
"""
