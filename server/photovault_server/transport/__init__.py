"""Transports: native gRPC now; the web gateway and the Lambda handler share its status table."""
