"""The services API's parts, as a package the Lambda runtime and the tests both import.

The function ships ``functions/services_api/`` as its code root, so Lambda sees
``app`` and this package as ``api``; the tests and tools see them under
``functions.services_api``. Modules here import each other relatively so that
both views load one and the same code.
"""
