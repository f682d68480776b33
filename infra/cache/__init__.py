"""The read cache of production mode: cache-aside in Redis for workflows, finished runs and projects."""

from ptw.infra.cache.caching_uow import CachingUnitOfWork, CachingUnitOfWorkFactory, caching_uow_factory
from ptw.infra.cache.redis_cache import CacheStats, RedisCache

__all__ = ["CacheStats", "CachingUnitOfWork", "CachingUnitOfWorkFactory", "RedisCache", "caching_uow_factory"]
