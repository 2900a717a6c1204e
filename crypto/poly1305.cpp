// PLACEHOLDER by the lead; replaced by the AVX-512 engineer (never committed).
