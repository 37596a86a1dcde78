"""The bundled policy catalog (JSON data only); this file lets the wheel ship the folder as a package."""
