"""Microsoft Graph client shared by the exporters that read Graph (Microsoft 365, Intune).

Pieces, each usable on its own::

    config.GraphApp, GraphOptions   strict config models (client secret or certificate; URLs,
                                    CA bundle, timeouts, retries) to embed in an exporter config
    auth.MsalTokenProvider          msal client credentials, one app object per tenant
    client.make_http_client         one pooled httpx client for every tenant
    client.GraphClient              list() follows @odata.nextLink, get() reads one object;
                                    expired page tokens restart the listing; 429/5xx,
                                    retries and deadlines are the core HTTP client's
    client.RequestStats             per-tenant request counts by status, for metrics
                                    (the core's one type, core.http.RequestStats)
    errors.GraphError, Reason       failures with a bounded reason for ``<area>_up`` labels

Typical use, per tenant::

    http = make_http_client(options)
    tokens = MsalTokenProvider(tenant_id, app, options)
    graph = GraphClient(http, tokens, options, RequestStats())
    devices = await graph.list("deviceManagement/managedDevices", Deadline.after(60))
"""
