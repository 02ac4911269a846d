/* fc_vec_end.h -- undoes fc_vec_begin.h (see there). */
#undef VT
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VSET1
#undef VFMA
#undef VADD
#undef VMUL
#undef VMAX
#undef VMIN
