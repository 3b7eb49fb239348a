"""Air-gapped bundles: `docker save` tars, datasets and wheels, described by a checksummed manifest.

`save` writes a bundle where there is internet, `verify` checks one without touching the engine,
`load` verifies everything first and only then loads images and places datasets on the offline host.
"""
