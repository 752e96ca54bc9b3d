/* empty.c — placeholder so that a module folder without sources still builds. */
typedef int pv_empty_translation_unit_;
