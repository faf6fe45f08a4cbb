"""Wires waterz together: the Celery app (`celery`) and the FastAPI app (`app`) from one Settings.

    uvicorn server_production:app --host 0.0.0.0 --port 8000
    celery -A server_production.celery worker --pool=threads --concurrency=1 -n worker1@%h
"""

from tasks.celery_app import create_celery
from waterz.api import create_api
from waterz.core.logs import install_secret_masking
from waterz.core.settings import get_settings

install_secret_masking()
settings = get_settings()
celery = create_celery(settings)
app = create_api(settings, celery)
