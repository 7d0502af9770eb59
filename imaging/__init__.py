"""Imaging: DICOM import (validation, de-identification, renditions), the Image and IdentityKey models, the import
pages, API and command, and the permission-checked image-serving views. The DICOM work itself is `imaging.dicom`,
a pure package with no Django import. Sits above `trial`; who may see a case's images is decided by rules that
the apps above register (`imaging.access`), so this app never imports them (docs/architecture.md)."""
