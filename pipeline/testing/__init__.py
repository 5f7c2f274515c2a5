"""Test and demo helpers that ship with the package: the synthetic scene generator
(:mod:`.scene`; the committed source data folder is passed in) and a fake STAC API
(:mod:`.stac_api`)."""
