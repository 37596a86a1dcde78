"""Credentials and the ARM endpoint: which azure-identity credential, which token scope.

The CLI names a credential (`--auth`) instead of always using DefaultAzureCredential, so a CI job
states exactly how it signs in and never falls through to an unexpected identity (or to the
instance metadata endpoint on a build agent). `--arm-endpoint` moves every client and the token
scope together, for sovereign clouds and for tests against a local server.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from backup_preflight.text import redact as redact  # collection stores only redacted messages

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

AUTH_METHODS = ("default", "cli", "environment", "managed-identity", "workload-identity")
PUBLIC_ARM_ENDPOINT = "https://management.azure.com"


class CollectError(Exception):
    """A problem that stops collection before any scope is queried (bad endpoint, no token)."""


def resolve_endpoint(arm_endpoint: str | None) -> str:
    """The ARM base URL without a trailing slash; https only, since a bearer token travels on it."""
    if not arm_endpoint:
        return PUBLIC_ARM_ENDPOINT
    endpoint = arm_endpoint.strip().rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
        raise CollectError(
            f"--arm-endpoint must be an https URL with a host and no path, got {arm_endpoint!r}")
    return endpoint


def _known_clouds() -> dict[str, tuple[str, str]]:
    """ARM endpoint → (token scope, Entra authority host) for the clouds azure-core knows."""
    from azure.core import AzureClouds
    from azure.identity import AzureAuthorityHosts
    from azure.mgmt.core.tools import get_arm_endpoints

    authorities = {
        AzureClouds.AZURE_PUBLIC_CLOUD: AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureClouds.AZURE_CHINA_CLOUD: AzureAuthorityHosts.AZURE_CHINA,
        AzureClouds.AZURE_US_GOVERNMENT: AzureAuthorityHosts.AZURE_GOVERNMENT,
    }
    known = {}
    for cloud, authority in authorities.items():
        endpoints = get_arm_endpoints(cloud)
        known[endpoints["resource_manager"].rstrip("/")] = (endpoints["credential_scopes"][0], authority)
    return known


def token_scope(endpoint: str) -> str:
    """The scope to ask tokens for: the SDK's own for a known cloud, else `<endpoint>/.default`."""
    known = _known_clouds().get(endpoint.lower())
    return known[0] if known else f"{endpoint}/.default"


def make_credential(method: str, endpoint: str = PUBLIC_ARM_ENDPOINT) -> TokenCredential:
    """The azure-identity credential named by `--auth`; sovereign clouds get their authority host."""
    import azure.identity as identity

    kwargs: dict[str, Any] = {}
    known = _known_clouds().get(endpoint.lower())
    if known and not os.environ.get("AZURE_AUTHORITY_HOST"):
        kwargs["authority"] = known[1]
    if method == "default":
        return identity.DefaultAzureCredential(**kwargs)
    if method == "cli":
        return identity.AzureCliCredential()
    if method == "environment":
        return identity.EnvironmentCredential(**kwargs)
    if method == "managed-identity":
        return identity.ManagedIdentityCredential()
    if method == "workload-identity":
        return identity.WorkloadIdentityCredential(**kwargs)
    raise CollectError(f"unknown --auth {method!r}; expected one of {', '.join(AUTH_METHODS)}")
