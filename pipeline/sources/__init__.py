"""Imagery sources: one :class:`~pipeline.sources.profile.SourceProfile` per collection and provider.

- :mod:`.profile`: the profile record (asset keys, scaling, mask rule);
- :mod:`.sentinel2`, :mod:`.landsat`: the built-in profiles; :mod:`.mask`: clear-sky rules;
- :mod:`.registry`: profiles by collection id (``register_profile``, ``resolve_profile``);
- :mod:`.search`: finding items (static catalog, saved items file, STAC API);
- :mod:`.load`: checking items and loading them as a dask reflectance cube (odc-stac).
"""

from .registry import profiles, register_profile, resolve_profile, unregister_profile

__all__ = ["profiles", "register_profile", "resolve_profile", "unregister_profile"]
