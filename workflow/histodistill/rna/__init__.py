"""Bulk RNA-seq: reading count tables, DESeq2 normalisation, pathway scores."""
