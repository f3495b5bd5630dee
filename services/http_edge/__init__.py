"""The HTTP edge: OpenAI's audio API and job resources over HTTP, translated to the gateway's
public gRPC API (so keys, quotas, limits and validation stay in one place)."""
