"""The demo: seeds DEMO-CXR (real radiographs through the real import, drafts, pre-filled reads and ratings) for
`make demo`. Sits on top of every app it exercises (docs/architecture.md)."""
