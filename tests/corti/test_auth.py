"""OAuth client credentials: caching, refresh before expiry, one refresh at a time."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import SecretStr

from corti_sandbox.testing import SandboxControl
from service.corti import CortiAuthError, CortiClient
from service.corti.auth import TokenProvider
from service.corti.schemas import TokenResponse
from tests.fixtures.corti import MakeCorti


def _answer(value: str, expires_in: int = 300) -> TokenResponse:
    return TokenResponse(access_token=SecretStr(value), expires_in=expires_in)


class TestTokenProvider:
    @pytest.mark.asyncio
    async def test_concurrent_callers_share_one_fetch(self) -> None:
        calls = 0

        async def fetch() -> TokenResponse:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            return _answer(f"token-{calls}")

        provider = TokenProvider(fetch)
        tokens = await asyncio.gather(*(provider.token() for _ in range(50)))
        assert set(tokens) == {"token-1"}
        assert calls == 1

    @pytest.mark.asyncio
    async def test_short_lived_token_still_one_fetch_per_burst(self) -> None:
        calls = 0

        async def fetch() -> TokenResponse:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            return _answer(f"token-{calls}", expires_in=60)  # under the 2 min buffer

        provider = TokenProvider(fetch)
        first = await asyncio.gather(*(provider.token() for _ in range(10)))
        assert set(first) == {"token-1"}
        # Like the SDK, a token shorter than the buffer is refetched per call.
        assert await provider.token() == "token-2"

    @pytest.mark.asyncio
    async def test_refresh_after_buffer_and_invalidate(self) -> None:
        now = 1000.0
        calls = 0

        async def fetch() -> TokenResponse:
            nonlocal calls
            calls += 1
            return _answer(f"token-{calls}", expires_in=300)

        provider = TokenProvider(fetch, clock=lambda: now)
        assert await provider.token() == "token-1"
        now += 179
        assert await provider.token() == "token-1"
        now += 2  # past expires_in - 120 s
        assert await provider.token() == "token-2"
        provider.invalidate("token-1")  # stale: the newer token stays
        assert await provider.token() == "token-2"
        provider.invalidate("token-2")
        assert await provider.token() == "token-3"

    def test_repr_hides_token(self) -> None:
        from service.corti.auth import _CachedToken

        assert "secret-value" not in repr(_CachedToken("secret-value", 1.0))


class TestTokensAgainstSandbox:
    @pytest.mark.asyncio
    async def test_token_is_cached(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        created = await corti.create_interaction("e")
        for _ in range(3):
            await corti.get_interaction(created.interaction_id)
        stats = await control.stats()
        assert stats["tokens_issued"] == 1
        assert corti.token_refreshes == 1

    @pytest.mark.asyncio
    async def test_concurrent_first_calls_fetch_one_token(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        await asyncio.gather(*(corti.create_interaction(f"e{i}") for i in range(20)))
        assert (await control.stats())["tokens_issued"] == 1

    @pytest.mark.asyncio
    async def test_refreshed_before_expiry(
        self, make_corti: MakeCorti, control: SandboxControl
    ) -> None:
        await control.configure(token_expires_in=2)
        # Fresh for 2 - 1.7 = 0.3 s, then refreshed before the sandbox expires it.
        async with make_corti(refresh_buffer=1.7) as corti:
            created = await corti.create_interaction("e")
            await corti.get_interaction(created.interaction_id)
            assert corti.token_refreshes == 1
            await asyncio.sleep(0.35)
            await corti.get_interaction(created.interaction_id)
            assert corti.token_refreshes == 2
        requests = (await control.stats())["requests"]
        assert all(r["status"] != 401 for r in requests)

    @pytest.mark.asyncio
    async def test_revoked_token_gets_one_refresh_and_retry(
        self,
        corti: CortiClient,
        control: SandboxControl,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        created = await corti.create_interaction("e")
        old_token = await corti.access_token()
        await control.revoke_tokens()
        results = await asyncio.gather(
            *(corti.get_interaction(created.interaction_id) for _ in range(5))
        )
        assert {r.id for r in results} == {created.interaction_id}
        stats = await control.stats()
        assert stats["tokens_issued"] == 2  # five 401s, one refresh
        statuses = [r["status"] for r in stats["requests"] if r["method"] == "GET"]
        assert statuses.count(401) == 5
        new_token = await corti.access_token()
        assert old_token != new_token
        for secret in (old_token, new_token, "test-secret"):
            assert secret not in caplog.text

    @pytest.mark.asyncio
    async def test_second_401_is_raised(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        await control.arm({"kind": "error", "status": 401, "count": 2})
        with pytest.raises(CortiAuthError) as caught:
            await corti.create_interaction("e")
        assert caught.value.status == 401
        assert caught.value.retryable is False
        assert (await control.stats())["tokens_issued"] == 2

    @pytest.mark.asyncio
    async def test_wrong_credentials(
        self, make_corti: MakeCorti, control: SandboxControl
    ) -> None:
        await control.configure(client_id="right-id", client_secret="right-secret")
        async with make_corti(client_id="right-id", client_secret="wrong") as corti:
            with pytest.raises(CortiAuthError) as caught:
                await corti.create_interaction("e")
        assert caught.value.status == 401
        assert caught.value.error_type == "unauthorized_client"
        assert "wrong" not in str(caught.value)
        async with make_corti(
            client_id="right-id", client_secret="right-secret"
        ) as corti:
            await corti.create_interaction("e")

    @pytest.mark.asyncio
    async def test_token_endpoint_outage_is_retried(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        await control.arm(
            {
                "kind": "error",
                "status": 503,
                "count": 2,
                "path": "/openid-connect/token",
            }
        )
        await corti.create_interaction("e")
        statuses = [r["status"] for r in (await control.stats())["requests"]]
        assert statuses[:4] == [503, 503, 200, 201]
