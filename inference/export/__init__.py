"""A result in other tools' formats: GEFF (graph exchange, with the reverse import) and a
napari tracks table."""

from inference.export.geff import export_geff, import_geff, validate_geff
from inference.export.napari import export_napari, napari_tracks

__all__ = ["export_geff", "export_napari", "import_geff", "napari_tracks", "validate_geff"]
