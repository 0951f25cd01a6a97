"""A NinjaOne API v2 simulator: OAuth2 client credentials, devices, the patch queries."""
