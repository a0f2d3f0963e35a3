"""The HTTP edge: request context, locale, CSRF, error rendering, templates."""
