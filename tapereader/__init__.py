"""tapereader."""
