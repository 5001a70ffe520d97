"""The bundled demo: a local news web made from real article text, and its runner."""
