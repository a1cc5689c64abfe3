"""The paper as data: its methods, prompts, constants, tables (data/paper/*.csv) and claims, and the experiments that
reproduce them. Imports gvcf.engine and gvcf.eval."""
