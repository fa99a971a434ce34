"""Every component's settings class in one list (the settings reference and its tests read it),
and the one line a bad value becomes at any `par` command."""

from __future__ import annotations

import sys
from typing import NoReturn

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from runtime.settingtypes import describe

EXIT_BAD_SETTING = 2


def settings_classes() -> list[type[BaseSettings]]:
    """Logging, runtime, gateway, eventing, serving, registry: the order of docs/settings.md."""
    from eventing.settings import EventingSettings
    from gateway.settings import GatewaySettings
    from registry.settings import RegistrySettings
    from runtime.config import RuntimeSettings
    from runtime.jsonlog import LogSettings
    from serving import ServingSettings

    return [
        LogSettings, RuntimeSettings, GatewaySettings, EventingSettings, ServingSettings, RegistrySettings
    ]


def settings_class(error: ValidationError | SettingsError) -> type[BaseSettings] | None:
    """The settings class an error is about: pydantic names the model in `title`; a value that
    does not parse names only its field (one field of one class, by construction)."""
    if isinstance(error, ValidationError):
        return next((c for c in settings_classes() if c.__name__ == error.title), None)
    return next((c for c in settings_classes() for n in c.model_fields if f'field "{n}"' in str(error)), None)


def exit_bad_setting(error: ValidationError | SettingsError, command: str = "par") -> NoReturn:
    """Print `command: invalid setting VARIABLE: what is accepted (got 'value')` on stderr, exit 2."""
    settings = settings_class(error)
    if settings is None:
        raise error
    print(f"{command}: {describe(error, settings)}", file=sys.stderr)
    sys.exit(EXIT_BAD_SETTING)
