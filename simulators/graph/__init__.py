"""A Microsoft Graph simulator: token endpoint, service health, licences, Secure Score, MFA."""
