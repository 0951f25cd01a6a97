"""Microsoft Graph client shared by the exporters that read Graph (Microsoft 365, Intune)."""
