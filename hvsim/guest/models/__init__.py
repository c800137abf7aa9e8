"""Guest OS state and rules: identity, boot and setup, answer files, cultures and code pages."""
