"""The HTTP front-end: SCIM routes, authentication, errors, filters, resources, PATCH,
and the admin API on the same port."""
