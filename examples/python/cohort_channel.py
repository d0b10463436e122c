"""The channel both examples use: trust settings from the environment, as cohortctl
reads them."""

import os

import grpc


def cohort_channel(target: str) -> grpc.Channel:
    """A channel to `target` with the environment's trust settings, as cohortctl reads
    them: COHORT_TLS_CA (turns TLS on), COHORT_TLS_CERT and COHORT_TLS_KEY (mutual TLS),
    COHORT_TOKEN (a bearer token; without TLS gRPC sends it only over loopback)."""
    def read(name):
        path = os.environ.get(name)
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    ca, cert, key = read("COHORT_TLS_CA"), read("COHORT_TLS_CERT"), read("COHORT_TLS_KEY")
    token = os.environ.get("COHORT_TOKEN")
    if ca is None and token is None:
        return grpc.insecure_channel(target)
    transport = (grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
                 if ca is not None else grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    if token is not None:
        transport = grpc.composite_channel_credentials(transport, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(target, transport)
