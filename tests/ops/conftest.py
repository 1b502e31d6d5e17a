"""Operations tests reuse the worker tests' fast worker and Corti client."""

from tests.worker.conftest import corti_options, run_worker

__all__ = ["corti_options", "run_worker"]
