"""Export trained models to open_clip's hub layout (docs: README, "Exporting a model")."""
