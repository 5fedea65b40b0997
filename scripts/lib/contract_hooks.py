"""Schemathesis hooks for scripts/contracttest (loaded through SCHEMATHESIS_HOOKS).

tus sends its bytes as application/offset+octet-stream, a media type schemathesis has no
serializer for: they are raw bytes, serialized like application/octet-stream.
"""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
