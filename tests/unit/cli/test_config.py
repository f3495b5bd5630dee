"""services.cli.config: what the `sayit` command reads from the environment."""

from __future__ import annotations

from pathlib import Path

from services.cli.config import load_config
from services.client.client import DEFAULT_ADDR


def test_cli_defaults() -> None:
    config = load_config({})
    assert (config.addr, config.api_key, config.ca_file) == (DEFAULT_ADDR, None, None)


def test_cli_addr_is_sayit_addr_else_the_gateway_of_make_up() -> None:
    assert load_config({"SAYIT_GATEWAY_ADDR": "127.0.0.1:6000"}).addr == "127.0.0.1:6000"
    both = {"SAYIT_ADDR": "gateway.example:443", "SAYIT_GATEWAY_ADDR": "127.0.0.1:6000"}
    assert load_config(both).addr == "gateway.example:443"
    assert load_config({"SAYIT_ADDR": " ", "SAYIT_GATEWAY_ADDR": "h:1"}).addr == "h:1"  # unset


def test_cli_key_and_ca_file() -> None:
    config = load_config({"SAYIT_API_KEY": " k3y ", "SAYIT_CA_FILE": "~/ca.pem"})
    assert config.api_key == "k3y"
    assert config.ca_file == Path.home() / "ca.pem"
    assert load_config({"SAYIT_API_KEY": ""}).api_key is None
