"""Exceptions whose text reaches the Falco user: each says what is wrong and what to change."""

from __future__ import annotations


class PluginError(Exception):
    """Base of every error the shim reports through get_last_error."""


class ConfigError(PluginError):
    """init_config is wrong: the message names the key and the expected value."""


class OpenError(PluginError):
    """open_params or the AWS setup behind them is wrong: the message spells out the fix."""
