"""Size limits of the tracking API (the same as Segment's HTTP Tracking API)."""

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2_500
# A request body may arrive gzip-compressed; decompression stops past this many bytes (gzip bombs).
MAX_DECOMPRESSED_BYTES = MAX_BATCH_BYTES
MAX_ID_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 255
