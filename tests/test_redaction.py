"""Secrets never shown (invariant 7, 13): an MCP client over stdio sends nested, variant and
URL-embedded secrets; the tool results, ``approvals list/show``, ``audit tail``,
``connections list`` (real CLI subprocesses) and the store never contain one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    approve,
    connect_args,
    db_path,
    free_port,
    policy,
    run_cli,
    stdio_client,
    text_of,
    write_policy,
)

pytestmark = pytest.mark.anyio

# Every one of these strings is a secret; none may be shown anywhere.
SECRETS = {
    "values.password": "S3cr-nested-password",
    "pwd": "S3cr-pwd",
    "pass": "S3cr-pass",
    "passwd": "S3cr-passwd",
    "auth": "S3cr-auth",
    "token": "S3cr-token",
    "secret": "S3cr-secret",
    "api_key": "S3cr-api-key",
    "db_password": "S3cr-db-password",
    "refresh_token": "S3cr-refresh-token",
    "apikey": "S3cr-apikey",
    "Authorization": "S3cr-authorization",
    "X-Api-Key": "S3cr-x-api-key",
    "url": "S3cr-url-password",
    "text": "S3cr-in-text",
    "json": "S3cr-in-json-string",
    "list": "S3cr-in-list",
    # what an outside tester found missing (attack 7, finding 04)
    "pem": "S3cr-pem-body",
    "json2": "S3cr-json-twice",
    "relative_url": "S3cr-relative-url",
    "option": "S3cr-option",
    "fullwidth": "S3cr-fullwidth",
    "ssh_key": "S3cr-ssh-key",
    "signing_key": "S3cr-signing-key",
    "totp": "S3cr-totp",
    "cookie": "S3cr-cookie",
    "session": "S3cr-session",
    # what an outside review found shown in clear (finding 08)
    "header_pair": "S3cr-header-pair",
    "header_object": "S3cr-header-object",
    "xmlrpc": "S3cr-xmlrpc",
    "form": "S3cr-form",
    "curl": "S3cr-curl",
    "mysql": "S3cr-mysql",
    "tab": "S3cr-tab",
    "dsn": "S3cr-dsn",
    "x_api_key": "S3cr-x-api-key-header",
    "confusable": "S3cr-confusable",
    # what an outside tester found shown in clear (attack 11, findings 07 and 08)
    "php": "S3cr-php-pair",
    "ruby": "S3cr-ruby-pair",
    "passwort": "S3cr-passwort",
    "mot_de_passe": "S3cr-mot-de-passe",
    "contraseña": "S3cr-contrasena",
    "ПАРОЛЬ": "S3cr-parol",
    "密码": "S3cr-mima",
    "pword": "S3cr-pword",
    "recovery_codes": "S3cr-recovery-codes",
    "private": "S3cr-private",
}


def secret_arguments(alias: str) -> dict[str, Any]:
    """odoo_write arguments with a secret at every place the rule has to find one."""
    return {
        "alias": alias,
        "model": "res.users",
        "ids": [7],
        "values": {
            "name": "Ann",
            "password": SECRETS["values.password"],
            "pwd": SECRETS["pwd"],
            "pass": SECRETS["pass"],
            "settings": {
                "passwd": SECRETS["passwd"],
                "auth": SECRETS["auth"],
                "token": SECRETS["token"],
                "deeper": [{"secret": SECRETS["secret"], "api_key": SECRETS["api_key"]}],
            },
            "db_password": SECRETS["db_password"],
            "refresh_token": SECRETS["refresh_token"],
            "apikey": SECRETS["apikey"],
            "headers": {
                "Authorization": f"Bearer {SECRETS['Authorization']}",
                "X-Api-Key": SECRETS["X-Api-Key"],
            },
            "website": f"https://ann:{SECRETS['url']}@erp.example.com/web",
            "comment": f"reach me at password={SECRETS['text']} please",
            "payload": json.dumps({"credentials": {"pin": SECRETS["json"]}}),
            "tags": ["a", {"access_token": SECRETS["list"]}],
            "note": "private_key=-----BEGIN PRIVATE KEY-----\n"
            f"{SECRETS['pem']}MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
            "payload2": json.dumps(json.dumps({"password": SECRETS["json2"]})),
            "backup": f"//admin:{SECRETS['relative_url']}@backup.example.com/db",
            "cmdline": f"pg_dump --password {SECRETS['option']} -h db",
            "\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24": SECRETS["fullwidth"],
            **{
                key: SECRETS[key] for key in ("ssh_key", "signing_key", "totp", "cookie", "session")
            },
            "header_pairs": [["Authorization", SECRETS["header_pair"]], ["Accept", "text/plain"]],
            "header_objects": [{"name": "X-Api-Key", "value": SECRETS["header_object"]}],
            "xml": "<member><name>password</name><value><string>"
            f"{SECRETS['xmlrpc']}</string></value></member>",
            "form": f"user%5Bpassword%5D={SECRETS['form']}&user[login]=ann",
            "shell": f"curl -u admin:{SECRETS['curl']} https://x; mysql -p{SECRETS['mysql']} db",
            "tsv": f"password\t{SECRETS['tab']}",
            "dsn": f"odoo:{SECRETS['dsn']}@db.example.com:5432",
            "raw_header": f"X-API-KEY {SECRETS['x_api_key']}",
            "p\u0430ssword": SECRETS["confusable"],
            "php": f"$db = array('user' => 'odoo', 'password' => '{SECRETS['php']}');",
            "ruby": f"{{:password => \"{SECRETS['ruby']}\", :host => 'db'}}",
            **{
                key: SECRETS[key]
                for key in ("passwort", "mot_de_passe", "contraseña", "ПАРОЛЬ", "密码", "pword")
            },
            "recovery_codes": [SECRETS["recovery_codes"], "S3cr-second-code"],
            "private": SECRETS["private"],
        },
    }


def assert_no_secret(text: str, where: str) -> None:
    leaked = [secret for secret in SECRETS.values() if secret in text]
    assert not leaked, f"{where} shows {leaked}:\n{text}"


def store_dump(data_dir: Path) -> str:
    """Every row of the store's approval requests and audit, as text (the connections table
    holds a connection's credentials by design: it is the configuration)."""
    db = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True)
    try:
        rows = [
            *db.execute("SELECT * FROM approval_requests").fetchall(),
            *db.execute("SELECT * FROM audit").fetchall(),
        ]
    finally:
        db.close()
    return repr(rows)


async def test_secrets_in_arguments_are_never_shown(tmp_path: Path) -> None:
    policy_file = write_policy(
        tmp_path / "policy.json", policy(odoo_write={"action": "require_approval"})
    )
    # A closed port: the approved call fails at once, and its error note quotes the URL.
    port = free_port()
    url = f"http://ann:{SECRETS['url']}@127.0.0.1:{port}"
    async with stdio_client(tmp_path, policy_file=policy_file) as client:
        connect = {"alias": "prod", "url": url, "db": "prod", "username": "ann"}
        # Credentials inside a URL are refused (they belong in password or api_key), and the
        # refusal does not repeat them.
        refused = await client.call_tool("odoo_connect", connect | {"password": "S3cr-conn"})
        assert refused.is_error and "must not contain credentials" in text_of(refused)
        assert_no_secret(refused.model_dump_json(), "odoo_connect refusal")
        connect["url"] = f"http://127.0.0.1:{port}"
        connected = await client.call_tool("odoo_connect", connect | {"password": "S3cr-conn"})
        assert not connected.is_error, text_of(connected)
        assert_no_secret(connected.model_dump_json(), "odoo_connect result")
        assert "S3cr-conn" not in connected.model_dump_json()

        listing = await client.call_tool("odoo_connections", {})
        assert not listing.is_error, text_of(listing)
        assert_no_secret(listing.model_dump_json(), "odoo_connections")
        (shown,) = listing.structured_content["connections"]
        assert shown["url"] == f"http://127.0.0.1:{port}"

        arguments = secret_arguments("prod")
        first = await client.call_tool("odoo_write", arguments)
        assert first.is_error and first.structured_content["status"] == "pending"
        ref = first.structured_content["request"]
        assert_no_secret(first.model_dump_json(), "the pending answer")

        shown_request = run_cli(tmp_path, "approvals", "show", ref).stdout
        assert_no_secret(shown_request, "approvals show")
        assert "S3cr" not in shown_request
        # What is not a secret is still shown to the approver.
        assert '"name": "Ann"' in shown_request and "erp.example.com" in shown_request
        as_json = json.loads(run_cli(tmp_path, "approvals", "show", ref, "--json").stdout)
        assert as_json["arguments"]["values"]["password"] == "***"
        assert as_json["arguments"]["values"]["website"] == "https://ann:***@erp.example.com/web"
        assert as_json["arguments"]["values"]["php"] == (
            "$db = array('user' => 'odoo', 'password' => '***');"
        )
        assert_no_secret(run_cli(tmp_path, "approvals", "list", "--json").stdout, "approvals list")

        approve(tmp_path, ref, "carol")
        second = await client.call_tool("odoo_write", arguments)
        assert second.is_error  # the approved call ran and failed: nothing listens there
        assert_no_secret(second.model_dump_json(), "the failed call's answer")

    audit = run_cli(tmp_path, "audit", "tail", "-n", "50").stdout
    assert "approved_executed" in audit and "failed" in audit
    assert_no_secret(audit, "audit tail")
    assert_no_secret(run_cli(tmp_path, "audit", "tail", "--json").stdout, "audit tail --json")
    connections = run_cli(tmp_path, "connections", "list", "--json").stdout
    assert "127.0.0.1" in connections
    assert_no_secret(connections, "connections list")
    assert_no_secret(run_cli(tmp_path, "connections", "list").stdout, "connections list")
    assert_no_secret(store_dump(tmp_path), "the store")


async def test_approval_stays_bound_to_the_real_arguments(tmp_path: Path) -> None:
    """Two calls that differ only in a secret redact alike but need their own approvals."""
    policy_file = write_policy(
        tmp_path / "policy.json", policy(odoo_write={"action": "require_approval"})
    )
    async with stdio_client(tmp_path, policy_file=policy_file) as client:
        # a data call through a connection that is not there is refused before any request
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        one = secret_arguments("prod")
        other = json.loads(json.dumps(one))
        other["values"]["password"] = "S3cr-another"
        first = await client.call_tool("odoo_write", one)
        ref = first.structured_content["request"]
        approve(tmp_path, ref, "carol")
        changed = await client.call_tool("odoo_write", other)
        assert changed.structured_content["status"] == "pending"
        assert changed.structured_content["request"] != ref
    shown = [
        json.loads(run_cli(tmp_path, "approvals", "show", r, "--json").stdout)
        for r in (ref, changed.structured_content["request"])
    ]
    assert shown[0]["arguments"] == shown[1]["arguments"]
    assert shown[0]["arguments_hash"] != shown[1]["arguments_hash"]
