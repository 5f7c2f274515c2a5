"""The source registry: which :class:`SourceProfile` serves an item, by collection id.

Built-in profiles are registered here; a new source is one module defining a profile and one
``register_profile(MY_PROFILE)`` call (see the README's Development section).
"""

from __future__ import annotations

import pystac

from ..errors import InputError
from .landsat import LANDSAT_C2_L2
from .profile import SourceProfile
from .sentinel2 import EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2

_PROFILES: list[SourceProfile] = []


def register_profile(profile: SourceProfile) -> SourceProfile:
    """Add a profile (a later one with the same name replaces the earlier); returns it."""
    _PROFILES[:] = [p for p in _PROFILES if p.name != profile.name]
    _PROFILES.append(profile)
    return profile


def unregister_profile(name: str) -> None:
    """Remove a profile by name (tests that register a toy source clean up with this)."""
    _PROFILES[:] = [p for p in _PROFILES if p.name != name]


def profiles() -> tuple[SourceProfile, ...]:
    """Registered profiles, in registration order."""
    return tuple(_PROFILES)


def profiles_for(collection_id: str | None) -> tuple[SourceProfile, ...]:
    """Profiles that serve a collection id."""
    return tuple(p for p in _PROFILES if collection_id in p.collections)


def resolve_profile(item: pystac.Item) -> SourceProfile:
    """Pick the profile for an item from its collection id and asset keys."""
    for profile in profiles_for(item.collection_id):
        if profile.signature_asset in item.assets:
            return profile
    raise InputError(
        f"item {item.id}: no collection profile for collection {item.collection_id!r} "
        f"with assets {sorted(item.assets)}"
    )


for _builtin in (EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2, LANDSAT_C2_L2):
    register_profile(_builtin)
