"""The report stage: renders a ScanResult. Never recomputes a verdict."""
