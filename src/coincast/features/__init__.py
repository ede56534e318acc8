"""The batch feature layer: indicators, ML features and targets, locally or on Spark.

Public entry points (imported from their modules so ``import coincast.features`` stays light):

- :func:`coincast.features.pipeline.build_features`, ``feature_columns``, ``target_column``
- :data:`coincast.features.registry.INDICATORS` (the indicator registry)
- :func:`coincast.features.spark.run_spark` (the Spark engine)
"""
