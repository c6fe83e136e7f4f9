"""Code that SageMaker's scikit-learn container runs: training, batch inference and drift.

Python 3.9 and scikit-learn 1.2.1 compatible (see pipelines/container.py); nothing here knows AWS.
"""
