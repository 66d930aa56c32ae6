"""The admin API: see every pool credential's state; add, remove, enable and disable them."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.dialects import openai
from qwen_free_api.errors import BadRequest, Conflict, GatewayError, NotFound, Unauthenticated
from qwen_free_api.pool import Account, describe
from qwen_free_api.respond import error_response
from qwen_free_api.service import Gateway
from qwen_free_api.web import bearer, gateway_of, read_json


def _admin(request: Request) -> Gateway:
    gateway = gateway_of(request)
    expected = gateway.settings.admin_key
    if not expected:
        raise NotFound("the admin API is off; set QFA_ADMIN_KEY to turn it on")
    key = bearer(request) or request.headers.get("x-admin-key", "")
    if not key or not hmac.compare_digest(key.encode(), expected.encode()):
        raise Unauthenticated("missing or invalid admin key")
    return gateway


def _account(gateway: Gateway, request: Request) -> Account:
    account = gateway.pool.get(request.path_params["ident"])
    if account is None:
        raise NotFound("no such account", param="id")
    return account


async def list_accounts(request: Request) -> Response:
    try:
        gateway = _admin(request)
    except GatewayError as error:
        return error_response(openai.DIALECT, error)
    views = await describe(gateway.pool, gateway.pool.accounts)
    return JSONResponse({"object": "list", "data": views})


async def add_account(request: Request) -> Response:
    try:
        gateway = _admin(request)
        body = await read_json(request, 64 << 10)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise BadRequest("`token` must be a non-empty string", param="token")
        account = await gateway.pool.add(token)
    except GatewayError as error:
        return error_response(openai.DIALECT, error)
    [view] = await describe(gateway.pool, [account])
    return JSONResponse(view, status_code=201)


async def remove_account(request: Request) -> Response:
    try:
        gateway = _admin(request)
        account = _account(gateway, request)
        if not await gateway.pool.remove(account.id):
            raise Conflict(
                f"account {account.id} comes from {account.source}; disable it instead",
                param="id",
            )
    except GatewayError as error:
        return error_response(openai.DIALECT, error)
    return JSONResponse({"id": account.id, "deleted": True})


async def enable_account(request: Request) -> Response:
    return await _switch(request, "")


async def disable_account(request: Request) -> Response:
    return await _switch(request, "disabled by the admin")


async def _switch(request: Request, reason: str) -> Response:
    try:
        gateway = _admin(request)
        account = _account(gateway, request)
    except GatewayError as error:
        return error_response(openai.DIALECT, error)
    await gateway.pool.store.set_disabled(account.id, reason)
    [view] = await describe(gateway.pool, [account])
    return JSONResponse(view)


routes = [
    Route("/v1/accounts", list_accounts, methods=["GET"]),
    Route("/v1/accounts", add_account, methods=["POST"]),
    Route("/v1/accounts/{ident}", remove_account, methods=["DELETE"]),
    Route("/v1/accounts/{ident}/enable", enable_account, methods=["POST"]),
    Route("/v1/accounts/{ident}/disable", disable_account, methods=["POST"]),
]
