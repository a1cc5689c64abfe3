"""The paper's constants: its ten prompts (Sec. Experiments), ..."""

PAPER_PROMPTS = (
    "A photo of a city skyline at night", "A photo of a mountain range at twilight",
    "A photo of a snowy mountain peak with skiers", "Cartoon panorama of spring summer beautiful nature",
    "Natural landscape in anime style illustration", "A photo of lush forest with a babbling brook",
    "An illustration of a beach in La La Land style", "Silhouette wallpaper of a dreamy scene with shooting stars",
    "A beach with palm trees", "A film photo of a beachside street under the sunset")
