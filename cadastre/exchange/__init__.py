"""Registry exchange (汇交): exchange XML import and export, the reporting queue."""
