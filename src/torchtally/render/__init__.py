"""Views of a `ModelReport` (text, rich, Markdown, HTML, CSV, DataFrame); the report itself
holds only data and calls these when asked."""
