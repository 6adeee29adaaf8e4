"""Who the synthetic demo people are: personas and the facts that vary between people.

Pure data. ``generator`` turns a persona plus a seeded random stream into a person's
profile, daily metrics, meals and goals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    code: str
    label: str
    ages: tuple[int, int]
    occupations: tuple[str, ...]
    # Typical day; each person draws their own baseline around these.
    steps: tuple[float, float]  # mean, person-to-person spread
    weekend_steps_factor: float
    sleep_hours: tuple[float, float]  # mean, night-to-night spread
    resting_hr: float
    bmi: tuple[float, float]
    weight_trend_kg_per_day: float
    exercise_days_per_week: float
    exercise_minutes: tuple[int, int]
    exercise_hr: tuple[int, int]
    calories: float  # a person of average size; scaled by body weight
    water_ml: float
    snack_probability: float
    breakfast_skip_probability: float
    macro_shares: tuple[float, float, float]  # protein, carbs, fat (shares of energy)
    blood_pressure: tuple[float, float] | None = None  # systolic, diastolic means
    fasting_glucose: float | None = None
    low_night_spo2: bool = False
    medical_history: tuple[str, ...] = ()


PERSONAS: tuple[Persona, ...] = (
    Persona(
        code="healthy_baseline",
        label="Healthy baseline",
        ages=(24, 58),
        occupations=("Teacher", "Architect", "Pharmacist", "Product designer", "Librarian"),
        steps=(8800, 1500), weekend_steps_factor=1.1,
        sleep_hours=(7.5, 0.6), resting_hr=62, bmi=(22.5, 1.5), weight_trend_kg_per_day=0.0,
        exercise_days_per_week=3, exercise_minutes=(30, 55), exercise_hr=(120, 145),
        calories=2200, water_ml=2300, snack_probability=0.35, breakfast_skip_probability=0.05,
        macro_shares=(0.20, 0.50, 0.30),
    ),
    Persona(
        code="sedentary_office_worker",
        label="Sedentary office worker",
        ages=(26, 60),
        occupations=("Accountant", "Software developer", "Call-centre agent", "Administrator", "Analyst"),
        steps=(3800, 900), weekend_steps_factor=0.85,
        sleep_hours=(6.8, 0.7), resting_hr=75, bmi=(27.0, 2.5), weight_trend_kg_per_day=0.004,
        exercise_days_per_week=0.5, exercise_minutes=(20, 35), exercise_hr=(110, 130),
        calories=2550, water_ml=1300, snack_probability=0.6, breakfast_skip_probability=0.3,
        macro_shares=(0.15, 0.50, 0.35),
    ),
    Persona(
        code="runner",
        label="Runner",
        ages=(22, 52),
        occupations=("Physiotherapist", "Engineer", "Student", "Sales manager", "Nurse"),
        steps=(10500, 1800), weekend_steps_factor=1.15,
        sleep_hours=(7.7, 0.5), resting_hr=52, bmi=(21.0, 1.2), weight_trend_kg_per_day=0.0,
        exercise_days_per_week=4.5, exercise_minutes=(35, 80), exercise_hr=(145, 168),
        calories=2800, water_ml=2800, snack_probability=0.6, breakfast_skip_probability=0.02,
        macro_shares=(0.20, 0.55, 0.25),
    ),
    Persona(
        code="poor_sleeper",
        label="Poor sleeper",
        ages=(25, 66),
        occupations=("Night-shift nurse", "Security guard", "Journalist", "Parent at home", "Trader"),
        steps=(6000, 1500), weekend_steps_factor=0.95,
        sleep_hours=(5.4, 1.0), resting_hr=73, bmi=(25.0, 2.5), weight_trend_kg_per_day=0.0,
        exercise_days_per_week=1, exercise_minutes=(20, 40), exercise_hr=(115, 135),
        calories=2300, water_ml=1600, snack_probability=0.55, breakfast_skip_probability=0.25,
        macro_shares=(0.16, 0.50, 0.34), low_night_spo2=True,
        medical_history=(
            "Chronic insomnia; tried CBT-I in the past.",
            "Suspected obstructive sleep apnoea, awaiting a sleep study.",
            "Shift work sleep disorder.",
        ),
    ),
    Persona(
        code="hypertensive",
        label="Hypertensive",
        ages=(45, 76),
        occupations=("Retired", "Bus driver", "Shop owner", "Lawyer", "Manager"),
        steps=(5000, 1200), weekend_steps_factor=1.0,
        sleep_hours=(6.9, 0.7), resting_hr=78, bmi=(29.0, 3.0), weight_trend_kg_per_day=0.0,
        exercise_days_per_week=1.5, exercise_minutes=(20, 40), exercise_hr=(110, 130),
        calories=2400, water_ml=1600, snack_probability=0.45, breakfast_skip_probability=0.1,
        macro_shares=(0.17, 0.45, 0.38), blood_pressure=(148, 93),
        medical_history=(
            "Essential hypertension; amlodipine 5 mg daily.",
            "Hypertension diagnosed at a routine check; ramipril 5 mg daily.",
            "High blood pressure and raised cholesterol; atorvastatin 20 mg.",
        ),
    ),
    Persona(
        code="pre_diabetic",
        label="Pre-diabetic",
        ages=(40, 72),
        occupations=("Truck driver", "Chef", "Receptionist", "Engineer", "Retired"),
        steps=(4800, 1200), weekend_steps_factor=0.95,
        sleep_hours=(6.8, 0.7), resting_hr=74, bmi=(30.0, 3.0), weight_trend_kg_per_day=0.002,
        exercise_days_per_week=1, exercise_minutes=(20, 35), exercise_hr=(110, 128),
        calories=2600, water_ml=1500, snack_probability=0.65, breakfast_skip_probability=0.15,
        macro_shares=(0.14, 0.58, 0.28), fasting_glucose=112,
        medical_history=(
            "Prediabetes (HbA1c 6.1 %); family history of type 2 diabetes.",
            "Impaired fasting glucose found at a routine check.",
            "Prediabetes and fatty liver on ultrasound.",
        ),
    ),
    Persona(
        code="weight_loss",
        label="Trying to lose weight",
        ages=(25, 62),
        occupations=("Marketing manager", "Teacher", "Electrician", "Hairdresser", "Civil servant"),
        steps=(7500, 1500), weekend_steps_factor=1.05,
        sleep_hours=(7.0, 0.6), resting_hr=70, bmi=(31.0, 3.0), weight_trend_kg_per_day=-0.07,
        exercise_days_per_week=3, exercise_minutes=(30, 50), exercise_hr=(118, 140),
        calories=1800, water_ml=2200, snack_probability=0.25, breakfast_skip_probability=0.05,
        macro_shares=(0.25, 0.45, 0.30),
        medical_history=("Obesity class I; started a supervised diet plan.",),
    ),
)  # fmt: skip

PERSONAS_BY_CODE = {persona.code: persona for persona in PERSONAS}

# IANA zones people live in, roughly weighted by where such an app would be used.
TIMEZONES: tuple[tuple[str, int], ...] = (
    ("Europe/London", 14),
    ("America/New_York", 14),
    ("America/Chicago", 7),
    ("America/Denver", 3),
    ("America/Los_Angeles", 9),
    ("America/Sao_Paulo", 5),
    ("America/Mexico_City", 3),
    ("Europe/Berlin", 8),
    ("Europe/Paris", 6),
    ("Europe/Madrid", 4),
    ("Africa/Lagos", 3),
    ("Africa/Johannesburg", 2),
    ("Asia/Kolkata", 6),
    ("Asia/Singapore", 3),
    ("Asia/Tokyo", 4),
    ("Australia/Sydney", 4),
    ("Pacific/Auckland", 2),
    ("UTC", 3),
)

FIRST_NAMES = {
    "female": ("Olivia", "Amara", "Sofia", "Mei", "Priya", "Hannah", "Lucia", "Zainab", "Emma", "Ingrid",
               "Chloe", "Aisha", "Yuki", "Grace", "Fatima", "Maya", "Elena", "Nora", "Leila", "Ruth"),
    "male": ("James", "Kwame", "Mateo", "Hiroshi", "Arjun", "Lucas", "Omar", "Noah", "Tomasz", "Liam",
             "Diego", "Ethan", "Kenji", "Samuel", "Ivan", "Ravi", "Felix", "Jonas", "Ahmed", "Owen"),
    "other": ("Alex", "Sam", "Jordan", "Robin", "Kai", "Charlie", "Rowan", "Sasha", "Quinn", "Ari"),
}  # fmt: skip
LAST_NAMES = (
    "Smith", "Okafor", "García", "Chen", "Patel", "Müller", "Rossi", "Kowalski", "Nakamura", "Johnson",
    "Silva", "Haddad", "Nguyen", "Brown", "Ivanova", "Kim", "Dubois", "Andersen", "Mensah", "Cohen",
    "Lopez", "Wilson", "Sato", "Khan", "Novak", "Murphy", "Fernandes", "Schmidt", "Taylor", "Adeyemi",
)  # fmt: skip

MEALS = {
    "breakfast": ("Porridge with berries", "Wholegrain toast and eggs", "Greek yoghurt with granola",
                  "Smoothie and a banana", "Croissant and coffee", "Bacon sandwich", "Muesli with milk",
                  "Avocado toast"),
    "lunch": ("Chicken salad wrap", "Lentil soup and bread", "Sushi box", "Cheese and ham sandwich",
              "Pasta salad", "Burrito bowl", "Jacket potato with beans", "Falafel pitta", "Pizza slice"),
    "dinner": ("Grilled salmon, rice and greens", "Spaghetti bolognese", "Vegetable curry with rice",
               "Steak and chips", "Stir-fried tofu and noodles", "Roast chicken and vegetables",
               "Bean chilli", "Fish tacos", "Mushroom risotto"),
    "snack": ("Apple", "Handful of almonds", "Chocolate bar", "Crisps", "Protein bar", "Banana",
              "Biscuits", "Hummus and carrots"),
}  # fmt: skip
