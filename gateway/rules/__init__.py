"""Compatibility rules: a provider's table as data (profile), checked per request (enforce), shown
as a table (render). The mode (enforce / audit / off) is applied by ``rules.mode``."""
from .enforce import Violation, check
from .profile import OpRules, Profile, ProfileError, list_profiles, load_profile

__all__ = ["OpRules", "Profile", "ProfileError", "Violation", "check", "list_profiles", "load_profile",
           "render_json", "render_markdown"]


def __getattr__(name: str):
    # render is imported on first use, so `python -m gateway.rules.render` runs it as __main__ cleanly
    if name in ("render_json", "render_markdown"):
        from . import render
        return getattr(render, name)
    raise AttributeError(name)
