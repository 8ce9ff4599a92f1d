"""Report sections built from more than the primary classifier's cells: classifiers compared,
generation and quality of the sources, and which quality metric predicts usefulness."""
