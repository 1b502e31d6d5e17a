"""A whole deployment (bench/deployment.py) on a throwaway PostgreSQL cluster.

`serve --workers 2`, two `worker` processes and `corti-sandbox` on a cluster
the test may stop and restart (tests/ops/pgcluster.py); the processes and the
ledger checks are bench/deployment.py's, shared with `python -m bench.soak`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.deployment import Deployment, deploy
from tests.ops.pgcluster import Cluster


@dataclass
class ClusterDeployment(Deployment):
    """A deployment and the cluster it runs on."""

    cluster: Cluster


@asynccontextmanager
async def deployment(directory: Path) -> AsyncIterator[ClusterDeployment]:
    """Cluster, database, sandbox, API and workers; everything stopped after."""
    cluster = Cluster()
    async with AsyncExitStack() as stack:
        stack.callback(cluster.remove)
        await asyncio.to_thread(cluster.start)
        conn = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
        )
        try:
            await conn.execute("CREATE DATABASE ledger")
        finally:
            await conn.close()
        running = await stack.enter_async_context(
            deploy(f"{cluster.server_url}/ledger", directory)
        )
        fields = {f.name: getattr(running, f.name) for f in dataclasses.fields(running)}
        yield ClusterDeployment(**fields, cluster=cluster)
