"""Airflow DAG for coincast's periodic batch jobs at scale (embedded mode uses the built-in scheduler).

Daily: backfill the newest hourly and daily klines into the lake and the store, recompute the
features and analytics, then retrain the default models and promote them only if they beat the
live ones on the latest walk-forward window. Every task is a plain `coincast` command, so the DAG
runs wherever the coincast package and its settings (COINCAST_* variables) are available.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

SYMBOLS = "BTCUSDT,ETHUSDT,BNBUSDT,XRPUSDT,ADAUSDT,SOLUSDT,DOGEUSDT,DOTUSDT,LTCUSDT,LINKUSDT"
LAKE = "{{ var.value.get('coincast_lake', 'file:///data/lake') }}"

with DAG(
    dag_id="coincast_daily",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["coincast"],
) as dag:
    backfill_1h = BashOperator(
        task_id="backfill_1h",
        bash_command=f"coincast backfill --symbols {SYMBOLS} --interval 1h --start {{{{ macros.ds_add(ds, -3) }}}} "
        f"--lake {LAKE}",
    )
    backfill_1d = BashOperator(
        task_id="backfill_1d",
        bash_command=f"coincast backfill --symbols {SYMBOLS} --interval 1d --start {{{{ macros.ds_add(ds, -7) }}}} "
        f"--lake {LAKE}",
    )
    features = BashOperator(
        task_id="features",
        bash_command=f"coincast features --lake {LAKE} --interval 1h --out /data/features/features_1h.parquet",
    )
    analytics = BashOperator(
        task_id="analytics",
        bash_command=f"coincast analytics --lake {LAKE} --interval 1d --csv /data/analytics/",
    )
    retrain = [
        BashOperator(
            task_id=f"retrain_{symbol.lower()}_{horizon}",
            bash_command=f"coincast train --symbol {symbol} --horizon {horizon} --lake {LAKE} "
            f"--interval {'1h' if horizon == '1h' else '1d'} --promote if_better",
        )
        for symbol in SYMBOLS.split(",")
        for horizon in ("1h", "1d")
    ]
    [backfill_1h, backfill_1d] >> features >> analytics
    features >> retrain
