/* fc_vec_begin.h -- the 8-lane (or, with FC_LANES 16 on AVX-512, 16-lane) float vector vocabulary of the tile templates
 * (conv_nchwc_tile.h, gemm_tile.h).  No include guard on purpose: a template is
 * included once per ISA, with FC_AVX set (AVX2/AVX-512VL intrinsics) or not
 * (portable fc_v8 from conv_nchwc_simd.h); fc_vec_end.h undefines it again. */
#if FC_AVX && defined(FC_LANES) && FC_LANES == 16
#define VT __m512
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#elif FC_AVX
#define VT __m256
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VMIN(a, b) _mm256_min_ps((a), (b))
#else
#define VT fc_v8
#define VZERO() fcp_zero()
#define VLOAD(p) fcp_load(p)
#define VSTORE(p, v) fcp_store((p), (v))
#define VBCAST(p) fcp_set1(*(p))
#define VSET1(x) fcp_set1(x)
#define VFMA(a, b, c) fcp_fma((a), (b), (c))
#define VADD(a, b) fcp_add((a), (b))
#define VMUL(a, b) fcp_mul((a), (b))
#define VMAX(a, b) fcp_max((a), (b))
#define VMIN(a, b) fcp_min((a), (b))
#endif
