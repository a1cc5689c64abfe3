"""The world's colours (RGB 0..255): skies, light and the sun or moon by time of day, each family's surfaces, and
the per-scene palette tints."""
from __future__ import annotations

N_PALETTES = 3
PALETTE_TINTS = ((1.0, 1.0, 1.0), (1.06, 0.98, 0.91), (0.93, 0.99, 1.07))  # neutral, warm, cool
PALETTE_JITTER = 0.05        # per-seed per-channel tint jitter

SKY = {  # (zenith, middle, horizon)
    "noon": ((60, 125, 215), (120, 175, 235), (195, 225, 245)),
    "sunset": ((75, 60, 130), (225, 110, 80), (255, 190, 110)),
    "twilight": ((20, 28, 75), (80, 70, 140), (210, 130, 135)),
    "night": ((4, 6, 20), (12, 18, 45), (30, 40, 80)),
}
FAMILY_SKY = {
    "mountain_twilight": {"twilight": ((15, 25, 70), (75, 65, 140), (240, 145, 110))},
    "cartoon_nature": {"noon": ((70, 175, 245), (125, 205, 248), (200, 238, 252))},
    "anime_landscape": {"noon": ((15, 55, 175), (60, 135, 235), (195, 228, 252))},
    "forest_brook": {"noon": ((175, 215, 165), (205, 228, 180), (230, 238, 195))},
    "lalaland_beach": {"noon": ((120, 150, 230), (230, 170, 220), (255, 215, 200)),
                       "sunset": ((90, 60, 160), (235, 110, 170), (255, 190, 150)),
                       "twilight": ((50, 30, 115), (150, 70, 175), (250, 150, 180)),
                       "night": ((20, 15, 60), (65, 35, 115), (150, 75, 150))},
    "shooting_stars": {"twilight": ((15, 15, 55), (85, 45, 125), (220, 105, 150)),
                       "night": ((6, 6, 30), (40, 25, 85), (155, 60, 125))},
    "snowy_skiers": {"noon": ((25, 80, 190), (70, 135, 225), (150, 195, 240))},
    "palm_beach": {"noon": ((20, 95, 210), (85, 160, 238), (190, 228, 252))},
    "beach_street_sunset": {"sunset": ((115, 40, 95), (245, 95, 45), (255, 200, 85))},
}
LIGHT = {"noon": (1.0, 1.0, 1.0), "sunset": (0.92, 0.7, 0.58), "twilight": (0.45, 0.45, 0.62),
         "night": (0.2, 0.22, 0.36)}                       # multiplier for lit (non-emissive) surfaces
SUN_ELEVATION = {"sunset": 0.13, "twilight": -0.03}   # low sun: height above the horizon
DARKNESS = {"noon": 0.0, "sunset": 0.35, "twilight": 0.7, "night": 1.0}
SUN = {  # time: (v or None for a low sun, radius, disc rgb, glow rgb, glow radius, glow alpha)
    "noon": (0.12, 0.045, (255, 252, 232), (255, 250, 225), 0.3, 0.25),
    "sunset": (None, 0.07, (255, 220, 140), (255, 165, 80), 0.5, 0.6),
    "twilight": (None, 0.07, (255, 160, 120), (255, 130, 110), 0.6, 0.35),
    "night": (0.16, 0.04, (240, 240, 220), (170, 180, 230), 0.2, 0.15),
}
WINDOW_LIT, STAR = (255, 205, 110), (255, 250, 235)
CITY = dict(far=(150, 160, 190), near=(85, 92, 115), glass=(150, 175, 205), water=(25, 45, 80))
MOUNTAIN = dict(far=(110, 110, 170), near=(30, 34, 60))
SNOW = dict(gear=(30, 30, 40), snow=(248, 250, 255), shade=(165, 185, 225), slope=(238, 243, 252), pine=(25, 65, 45),
            jackets=((220, 40, 40), (40, 80, 210), (250, 200, 30), (25, 25, 30)))
CARTOON = dict(hills=((165, 220, 95), (110, 200, 70), (70, 175, 55)), outline=(35, 70, 35),
               trunk=(125, 80, 40), canopy=(55, 165, 60), blossom=(245, 150, 195),
               flowers=((240, 60, 60), (255, 225, 40), (255, 255, 255)), cloud=(255, 255, 255),
               cloud_shade=(215, 235, 250))
ANIME = dict(mount_far=(140, 160, 215), mount=(85, 105, 175), trees=(30, 85, 75), lake=(55, 115, 205),
             grass_far=(150, 205, 80), grass=(50, 140, 55), cloud=(255, 255, 255), cloud_shade=(180, 195, 235))
FOREST = dict(far=(120, 165, 110), mid=(55, 110, 60), near=(22, 62, 35), canopy=(30, 80, 35),
              ground=(80, 120, 45), bank=(60, 70, 40), brook=(110, 170, 200), foam=(235, 248, 252),
              leaf=(150, 200, 80))
LALA = dict(hills_far=(165, 105, 190), hills=(105, 60, 150), sea=(20, 175, 180), sand=(220, 165, 200),
            pole=(60, 35, 95), lamp=(255, 235, 150), star=(255, 230, 250))
SHOOT = dict(far=(40, 25, 70), sil=(8, 5, 20), streak=(255, 250, 230))
PALM = dict(sea_far=(15, 95, 170), sea_near=(40, 205, 200), surf=(245, 250, 250), sand=(240, 220, 170),
            wet=(205, 185, 140), trunk=(125, 90, 55), frond=(40, 145, 55), cloud=(255, 255, 255),
            cloud_shade=(220, 232, 248))
STREET = dict(house=(135, 75, 70), house2=(95, 55, 70), sea=(240, 130, 70), sidewalk=(150, 110, 95),
              road=(70, 58, 70), line=(240, 210, 120), pole=(40, 28, 40), lamp=(255, 230, 160),
              palm=(45, 25, 40), tint=(1.05, 0.97, 0.86))
FILM_GRAIN = 0.035
