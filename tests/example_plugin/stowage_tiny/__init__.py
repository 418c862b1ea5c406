"""The tiny format: the example plugin of docs/writing-a-plugin.md."""
